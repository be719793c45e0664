"""How flow runs execute: warm worker processes on a Prefect work pool.

Belongs here: the Prefect worker that starts each flow run from a forkserver
with everything already imported (`worker`), that forkserver and the rules its
children live by (`warm_processes`, `preload`). Nothing here knows what a
delivery is: flows/ and tasks/ say what runs, this package says where.
"""
