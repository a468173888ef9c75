"""Jobs: the store, attempts and leases, submission, cancel, listing and the record feed."""
