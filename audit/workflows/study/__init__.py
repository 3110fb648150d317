"""`audit study`: the paper's grid (backbones x tasks x modes x augmentation x lr) as one resumable run.

Public API: `load_study(path) -> Study`, `run_study(study) -> StudyResult`.
"""

from audit.workflows.study.runner import StudyResult, run_study, select
from audit.workflows.study.spec import Backbone, Combination, Study, load_study

__all__ = ["Backbone", "Combination", "Study", "StudyResult", "load_study", "run_study", "select"]
