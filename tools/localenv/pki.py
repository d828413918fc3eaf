"""The local environment's own CA and certificates (tools/localenv/environment.py): the API server's serving
certificate, client certificates for the admin, the controller manager, ESO, the scheduler, the
kubelet and the API server towards the kubelet, the kubelet's serving certificate, and the
service-account signing key. Valid for a week; a new environment makes new ones."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from config.files import write_private


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    write_private(path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))


def _cert(subject: x509.Name, key: rsa.RSAPrivateKey, issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None,
          *, ca: bool = False, sans: list[x509.GeneralName] | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [x509.ExtendedKeyUsageOID.SERVER_AUTH, x509.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


ESO_USER = "external-secrets"
APISERVER_KUBELET_USER = "kube-apiserver-kubelet-client"
NODE_NAME = "localhost"  # tools/localenv/node.py: the name the API server dials


def make_pki(pki: Path) -> None:
    pki.mkdir(parents=True)
    ca_key = _key()
    ca = _cert(_name("testinfra-local-ca"), ca_key, None, ca=True)
    _write_key(pki / "ca.key", ca_key)
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_key = _key()
    server = _cert(_name("kube-apiserver"), server_key, (ca, ca_key), sans=[
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        x509.DNSName("localhost"), x509.DNSName("kubernetes.default.svc")])
    _write_key(pki / "apiserver.key", server_key)
    (pki / "apiserver.crt").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    # Client identities: the admin (a developer, Pulumi, kubectl), the controller manager, and ESO
    # (no group: tools/localenv/environment.py grants it the RBAC ESO's own chart grants).
    # The node: the kubelet as `system:node:<name>` (the Node authorizer's form), the API server's
    # client identity towards the kubelet, and the scheduler.
    for name, cn, org in (("admin", "testinfra-admin", "system:masters"),
                          ("controller-manager", "system:kube-controller-manager", None),
                          ("external-secrets", ESO_USER, None),
                          ("kubelet", f"system:node:{NODE_NAME}", "system:nodes"),
                          ("apiserver-kubelet-client", APISERVER_KUBELET_USER, None),
                          ("scheduler", "system:kube-scheduler", None)):
        k = _key()
        c = _cert(_name(cn, org), k, (ca, ca_key))
        _write_key(pki / f"{name}.key", k)
        (pki / f"{name}.crt").write_bytes(c.public_bytes(serialization.Encoding.PEM))
    serving_key = _key()
    serving = _cert(_name(NODE_NAME), serving_key, (ca, ca_key), sans=[
        x509.DNSName(NODE_NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    _write_key(pki / "kubelet-serving.key", serving_key)
    (pki / "kubelet-serving.crt").write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    _write_key(pki / "service-account.key", _key())
    make_etcd_pki(pki)


def make_etcd_pki(pki: Path) -> None:
    """etcd's own CA, apart from the cluster's: etcd trusts only it, and it signs only etcd's own
    certificate and the API server's client certificate -- so no other certificate of the environment
    (an admin's, a node's, ESO's, a rehearsal's server) can reach /registry past the API server."""
    ca_key = _key()
    ca = _cert(_name("testinfra-local-etcd-ca"), ca_key, None, ca=True)
    _write_key(pki / "etcd-ca.key", ca_key)
    (pki / "etcd-ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    # etcd serves its clients and its peer port over TLS with this one certificate (server and client auth).
    etcd_key = _key()
    etcd = _cert(_name("etcd"), etcd_key, (ca, ca_key), sans=[
        x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    _write_key(pki / "etcd.key", etcd_key)
    (pki / "etcd.crt").write_bytes(etcd.public_bytes(serialization.Encoding.PEM))
    client_key = _key()
    client = _cert(_name("kube-apiserver-etcd-client"), client_key, (ca, ca_key))
    _write_key(pki / "apiserver-etcd-client.key", client_key)
    (pki / "apiserver-etcd-client.crt").write_bytes(client.public_bytes(serialization.Encoding.PEM))


def issue_server_cert(pki: Path, name: str, hosts: list[str]) -> None:
    """A serving certificate `<name>.crt/.key` from the environment's CA, for these IPs and names."""
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    key = _key()
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    cert = _cert(_name(name), key, (ca, ca_key), sans=sans)
    _write_key(pki / f"{name}.key", key)
    (pki / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def write_kubeconfig(path: Path, pki: Path, user: str, *, server: str, context: str) -> None:
    import yaml

    write_private(path, yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": {
            "server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": user, "user": {
            "client-certificate": str(pki / f"{user}.crt"), "client-key": str(pki / f"{user}.key")}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
    }).encode())




def write_token_kubeconfig(path: Path, pki: Path, user: str, token: str, *, server: str, context: str) -> None:
    """A kubeconfig that authenticates with a bearer token (a ServiceAccount's), as CI's would."""
    import yaml

    write_private(path, yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": {
            "server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
    }).encode())
