"""Operators of the Confirma partner API: accounting, payments and invoices."""
