"""Loopback fakes of upstream providers: real HTTP servers speaking each wire protocol exactly."""
