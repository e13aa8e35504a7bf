"""Analytical CRM: features out of the view and pure models on frames."""
