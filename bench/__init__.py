"""`python -m bench`: gitops-lab's performance benchmark against a local control plane.
See bench/README.md for what each row measures and how to read the table.
"""
