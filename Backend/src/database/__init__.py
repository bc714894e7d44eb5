"""The data layer the application uses: configuration, engine and sessions, models, repositories."""
