"""HTTP controllers and their request/response schemas."""
