"""Who may call: OIDC tokens of deliveries and API keys or tokens of the facade."""
