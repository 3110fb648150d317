"""Analysis of audits and models: paired comparisons, INT8 precision forensics, model inspection."""
