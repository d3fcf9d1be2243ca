"""The resource server: bearer-token guard and the vault APIs."""
