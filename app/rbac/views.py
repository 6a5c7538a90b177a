"""Role, assignment, override and log screens."""
from flask import Blueprint

bp = Blueprint("rbac", __name__)
