"""The scheduler: the order in which queued jobs reach the workers.

Jobs do not go to Celery when they are stored. Each waits in Redis, in a sorted set of its
tenant's jobs at its queue and priority (oldest first), and a dispatcher releases it to Celery
once a slot of its queue is free (a live worker of that queue with no released job in hand), so
Celery's queues stay as short as the slots are many. Higher priorities go first; within a
priority, tenants take turns by stride scheduling: each tenant waiting holds a pass, the lowest
pass goes next and then advances by one over its weight, and a tenant that starts waiting begins
at the pass of the last one served, so a backlog buys no place ahead of a newcomer.

A job that asks for GPU memory goes to a free worker that has it (the least memory that does),
through that worker's own queue; while none is free, its queue waits with it. When a job waits
on a full queue and one of a lower priority runs there, the dispatcher asks the running one to
stop at its next epoch end (preemption); it then waits again and resumes from its checkpoint.

Exactly one process dispatches at a time (a lease in Redis, ``shared.scheduling.dispatcher``),
and every step is one script, so a dispatcher lost at any point loses no job and sends none
twice: a released job holds a dispatch deadline, past which the reapers send it again.
"""
