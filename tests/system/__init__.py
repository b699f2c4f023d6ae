"""The fault suite and the whole-system checks: kill -9, frozen and killed Redis, full disks, slow
bodies, func's host builder, the browser, the bench harness.
"""
