"""JobError: a training request the app refuses, carrying the sentence a person reads.

Every module of the jobs system raises it with its own sentence (next to the check that produces it); the
Training tab shows the sentence as it is, capitalised.
"""


class JobError(ValueError):
    """A request the jobs system refuses, with a sentence a person understands."""
