#!/usr/bin/env bash
# The node's PKI: one CA; the apiserver's serving certificate (valid for the loopback forward,
# the node address and the kubernetes Service); client certificates for admin
# (system:masters), the kubelet (system:node:NAME), kube-controller-manager, kube-scheduler
# and kube-proxy; the service-account signing key. Kept when already there.
#   pki.sh DIR NODE_NAME NODE_IP SERVICE_IP
set -euo pipefail
pki="$1" node_name="$2" node_ip="$3" svc_ip="$4"
[[ -f "$pki/ca.crt" && -f "$pki/sa.key" && -f "$pki/kube-proxy.crt" ]] && exit 0
mkdir -p "$pki"
cat > "$pki/openssl.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[v3_serving]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,IP:$node_ip,IP:$svc_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
ec=(genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)
openssl "${ec[@]}" -out "$pki/ca.key" 2>/dev/null
openssl req -x509 -new -config "$pki/openssl.cnf" -extensions v3_ca -key "$pki/ca.key" \
  -subj "/CN=supportgate-node-ca" -days 30 -sha256 -out "$pki/ca.crt"
sign() { # name subject extensions
  openssl "${ec[@]}" -out "$pki/$1.key" 2>/dev/null
  openssl req -new -config "$pki/openssl.cnf" -key "$pki/$1.key" -subj "$2" -out "$pki/$1.csr"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days 30 -sha256 -extfile "$pki/openssl.cnf" -extensions "$3" -out "$pki/$1.crt" 2>/dev/null
  rm -f "$pki/$1.csr"
}
sign serving "/CN=kube-apiserver" v3_serving
sign admin "/O=system:masters/CN=admin" v3_client
sign kubelet "/O=system:nodes/CN=system:node:$node_name" v3_client
sign kube-controller-manager "/CN=system:kube-controller-manager" v3_client
sign kube-scheduler "/CN=system:kube-scheduler" v3_client
sign kube-proxy "/CN=system:kube-proxy" v3_client
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
chmod 600 "$pki"/*.key
