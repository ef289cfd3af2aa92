"""What a guest learns about itself: the content of the metadata API and
of the config drive, built from an instance's records alone.

:class:`~twisted_compute.metadata.base.InstanceMetadata` needs no database
(the compute agent has none): the API loads the records and hands them
over; the agent passes the instance record it got over the bus.
"""

from twisted_compute.metadata.base import (  # noqa: F401
    EC2_VERSIONS, OPENSTACK_VERSIONS, InstanceMetadata, MetadataNotFound,
    load_vendor_data)
