"""services/webhooks: endpoint routes and outbound deliveries."""
