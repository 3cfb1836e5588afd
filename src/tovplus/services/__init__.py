"""Every rule of the product lives here; routes, pages and tasks call these functions."""
