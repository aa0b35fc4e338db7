"""The console: the gateway's pages in the browser at `/ui`, server-rendered from the admin and spend APIs."""
