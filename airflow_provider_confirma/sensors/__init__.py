"""Sensors: wait for records submitted to Confirma to sync to the accounting system."""
