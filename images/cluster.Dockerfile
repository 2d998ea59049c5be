# The local cluster's own images (scripts/local-cluster.sh), one target each, FROM scratch around the
# static binaries scripts/cluster-binaries.sh builds into ~/.cache/melancia/cluster/bin (the build
# context). Kubernetes' and the projects' published images are the same programs; they are built here
# because no image registry is reachable from the machines this project is built on.

# The pod sandbox: build/pause/linux/pause.c of k8s.io/kubernetes, linked statically.
FROM scratch AS pause
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]

# CoreDNS; Kubernetes' addon manifest grants NET_BIND_SERVICE for port 53 and runs it as root.
FROM scratch AS coredns
COPY coredns /coredns
EXPOSE 53 53/udp
ENTRYPOINT ["/coredns"]

# KServe's controller (cmd/manager), as its own image runs it: /manager, non-root.
FROM scratch AS kserve-controller
COPY kserve-manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]

# rancher/local-path-provisioner (its helper pods use the debootstrap base, which has a shell).
FROM scratch AS local-path-provisioner
COPY local-path-provisioner /usr/bin/local-path-provisioner
ENV PATH=/usr/bin
ENTRYPOINT ["/usr/bin/local-path-provisioner"]
