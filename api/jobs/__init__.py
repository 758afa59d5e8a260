"""Jobs: long work (productions, exports, imports, backups) run in the server after the request
that started it is answered with 202 (docs/JOBS.md). See ``runner`` for how."""

from api.jobs.problems import problem_of
from api.jobs.runner import JobCancelled, JobProgress, Jobs
from api.jobs.view import JobOut, JobView

__all__ = ["JobCancelled", "JobOut", "JobProgress", "JobView", "Jobs", "problem_of"]
