"""The local environments `make local-env [NAME=<name>]` starts and `make local-env-down` stops by PID
(environment, stop): etcd, the API server, controller manager and scheduler, a node of kubelet +
containerd + runc (node, node_packages), the node's images (images), its PKI (pki), the processes it
owns (processes), OpenBao, ESO, an S3 API for state (s3), and the rehearsals of staging and prod on it
(rehearse). Each by name with its folder, ports, stack and kube context (layout); `make local-envs`
lists them (listing)."""
