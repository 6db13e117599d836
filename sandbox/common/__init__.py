"""What the bKash and Monetix sandboxes share: the fault model and its queue (faults.py), the admin
routes for reset and faults (admin_api.py) and their client (admin.py), and the broken answers faults
produce (wire.py). Operations, provider-only fault kinds, match fields and error bodies stay in each
sandbox's own package."""
