"""The API process: pipeline loader, middleware, controllers."""
