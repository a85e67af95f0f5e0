"""LangChain integration of avengers-router (see issue: AvengersChatModel)."""
