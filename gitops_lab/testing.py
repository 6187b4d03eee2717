"""pytest plugin shipped with gitops-lab (fixtures that bring up the lab's real parts).
Registered through the `pytest11` entry point; fixtures are filled in by cluster/ and source/.
"""
