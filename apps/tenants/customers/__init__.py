"""Customers of a tenant: lifecycle, verification, customer services, data export and deletion.

Part of the tenants app (layer 2). Models are imported by `apps.tenants.models`, the admin by
`apps.tenants.admin`, the API routes by `apps.tenants.api.urls`. See docs/customers.md.
"""
