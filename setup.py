"""Packaging for twisted-compute.

The ``twisted/plugins`` directory is shipped as plain data inside the
``twisted.plugins`` namespace: there is deliberately no ``__init__.py`` in it,
because one would shadow Twisted's own plugin package and hide every plugin.
"""
from setuptools import find_packages, setup

setup(
    name="twisted-compute",
    version="0.1.0",
    description="An event-driven IaaS compute controller on Twisted, "
    "speaking the OpenStack Compute API v2.1",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["twisted_compute", "twisted_compute.*"])
    + ["twisted.plugins"],
    # Every package lies where its name says, below the project root: an
    # editable install (PEP 660) then puts the root on sys.path, where
    # Twisted's plugin discovery finds twisted/plugins.  Without it
    # setuptools maps the packages with an import hook, which Twisted's
    # plugin search does not see ("Unknown command: compute-all").
    package_dir={"": "."},
    package_data={
        "twisted_compute.db": ["alembic.ini", "alembic/*.py", "alembic/versions/*.py"],
    },
    include_package_data=True,
    # The default pipeline and policy files (found by
    # twisted_compute.config.etc_dirs when the package is installed).
    data_files=[("etc/twisted-compute",
                 ["etc/twisted-compute/api-pipeline.ini",
                  "etc/twisted-compute/policy.yaml",
                  "etc/twisted-compute/compute.conf.sample"])],
    install_requires=[
        "Twisted[tls]>=24.7",
        "klein>=24.8",
        "txamqp>=0.8.2",
        "treq>=24.9",
        "SQLAlchemy>=2.0",
        "attrs>=23.1",
        "alembic>=1.13",
        "jsonschema>=4.20",
        "zope.interface>=6",
        "PyYAML>=6",
        # psycopg 3 is SQLAlchemy 2.1's driver for a plain postgresql://
        # URL; psycopg2 serves postgresql+psycopg2:// URLs.
        "psycopg[binary]>=3.1",
        "psycopg2-binary>=2.9",
        "PyMySQL>=1.1",
        # The console proxy's websocket server (no hand-written framing).
        "autobahn>=23.1",
    ],
    extras_require={
        # Built from source against the system's libvirt (Debian:
        # libvirt-dev, pkg-config); 10.x and later build on libvirt 9.0.
        "libvirt": ["libvirt-python>=10"],
        # selenium drives Debian's chromium (noVNC through the console
        # proxy); websocket-client reads a real guest's serial console;
        # schemathesis fuzzes the API with its own OpenAPI document
        # (tests/integration/test_fuzz.py); boto3 and awscli are real EC2
        # clients (and botocore's signer and parser serve the in-memory
        # EC2 tests).
        "test": ["python-openstackclient>=7", "libvirt-python>=10",
                 "selenium>=4", "websocket-client>=1.6",
                 "schemathesis>=4.0", "boto3>=1.34", "awscli>=1.32"],
    },
    entry_points={
        "console_scripts": [
            "compute-manage = twisted_compute.cmd.manage:main",
        ],
    },
)
