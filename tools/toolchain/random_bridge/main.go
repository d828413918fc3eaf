// The real Random provider (terraform-provider-random through pulumi-terraform-bridge), built by
// `make e2e-tools` (tools/toolchain/build.py). One binary, two uses: `tfgen schema --out DIR` writes the
// Pulumi schema and the bridge metadata, which a second build embeds; without `tfgen` it serves the
// provider. Only `random_password` is mapped (as pulumi-random maps it); the program uses nothing else.
package main

import (
	"context"
	_ "embed"
	"os"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	pftfgen "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/terraform-providers/terraform-provider-random/internal/provider"
)

//go:embed schema.json
var schema []byte

//go:embed bridge-metadata.json
var metadata []byte

// The Python SDK's version (requirements.txt pins pulumi-random); set by the builder's ldflags.
var version = "0.0.0"

func info() tfbridge.ProviderInfo {
	return tfbridge.ProviderInfo{
		Name:         "random",
		P:            pftfbridge.ShimProvider(provider.New()),
		Version:      version,
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
		Resources: map[string]*tfbridge.ResourceInfo{
			"random_password": {Tok: "random:index/randomPassword:RandomPassword"},
		},
		IgnoreMappings: []string{"random_bytes", "random_id", "random_integer", "random_pet", "random_shuffle",
			"random_string", "random_uuid", "random_uuid4", "random_uuid7"},
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "tfgen" {
		os.Args = append(os.Args[:1], os.Args[2:]...)
		pftfgen.Main("random", info())
		return
	}
	pftfbridge.Main(context.Background(), "random", info(), pftfbridge.ProviderMetadata{PackageSchema: schema})
}
