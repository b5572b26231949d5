"""RQ jobs and the worker process. Jobs take sealed handles or ids, never request objects."""
