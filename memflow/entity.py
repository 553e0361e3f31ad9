"""``Entity``: a workflow's durable JSON memory, and queries over the entities of a namespace.

The class is defined in ``memflow.workflow.entity_class``, below the public API, because
``await workflow.entity()`` returns one too; this module is its public address.
"""

from memflow.workflow.entity_class import Entity

__all__ = ["Entity"]
