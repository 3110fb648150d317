"""Adversarial audits: robust accuracy of the deployed engine under L-inf / L2 attacks (`audit attack`).

The attack algorithms live in `audit.attacks`; this package runs them as a resumable, seeded audit
(one cell per attack, norm and budget), judges the examples on the engine(s) exactly as `audit run`
judges clean images, and writes the results document's `adversarial` section.
"""

from audit.attack_audit.api import DEFAULT_EPS, DEFAULT_LIMIT, AttackAuditResult, AttackConfig, run_attack_audit

__all__ = ["AttackConfig", "AttackAuditResult", "run_attack_audit", "DEFAULT_EPS", "DEFAULT_LIMIT"]
