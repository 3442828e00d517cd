"""Security: the built-in certificate authority, enrollment, users and authentication, group policy, audit."""
