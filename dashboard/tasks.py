"""Celery tasks of the dashboard app: thin wrappers around services."""

from celery import shared_task

from . import jobs


@shared_task(acks_late=True)
def run_job(job_id):
    job = jobs.run(job_id)
    return job.status if job else "skipped"


@shared_task
def recover_jobs():
    """Resend jobs the broker lost; rerun or fail jobs whose worker died (jobs.recover)."""
    return jobs.recover()
