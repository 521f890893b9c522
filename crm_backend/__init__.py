"""The CRM: models, services (domain operations + permissions) and, later, engines and REST API.

Nothing here knows about Rasa, channels or voice; callers open a unit of work
(`crm_backend.store.Store.unit_of_work`) and call services with it.
"""
