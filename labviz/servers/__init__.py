"""Layer 5, the face's servers: JupyterLab and Voilà, the teacher's board page, Voilà's kernel pool."""
