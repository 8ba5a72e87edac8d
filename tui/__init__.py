"""The Textual replay debugger; it reads the log through caxton.replay and the client."""
