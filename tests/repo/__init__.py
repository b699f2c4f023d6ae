"""Repository checks: the manifests, the manual, the Dockerfile, func.yaml, the locks, the public
API, the ways to install and run.
"""
