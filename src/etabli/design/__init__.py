"""Design briefs, design rounds with the client's approval, and prototypes."""
