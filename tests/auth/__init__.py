"""services/auth: integration principals and keys, web sign-in sessions."""
