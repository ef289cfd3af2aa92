"""The console proxy role: websocket listeners for noVNC and serial
consoles that check a console token and relay bytes to the console port
the token names (:mod:`twisted_compute.console.proxy`)."""
