"""The agent: enrolment, relay streams, applying through a cluster backend (`gitops agent`)."""
