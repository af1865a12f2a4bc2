// What the edge needs to know about the contracts, read from the descriptor
// set `make generate` writes (gen/aviary.binpb) — the same file Envoy's
// transcoder loads, so routes and transcoding can never disagree.
import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary, getExtension, hasExtension } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { http } from "@aviary/gen/google/api/annotations_pb";
import { requiredRoleOf, roleClaimOf } from "@aviary/runtime/auth/roles";
import type { HttpRule } from "@aviary/gen/google/api/http_pb";

export type HttpVerb = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface RestBinding {
  verb: HttpVerb;
  /** The path template as written in the proto, e.g. `/v1/auth/sessions/{session_id}`. */
  template: string;
}

export interface EdgeMethod {
  /** Short name, e.g. `Login`. */
  name: string;
  /** The gRPC path, e.g. `/aviary.auth.v1.AuthService/Login`. */
  grpcPath: string;
  streaming: boolean;
  /** The primary rule and its additional_bindings, in declaration order. */
  rest: RestBinding[];
  /** The `roles` claim value the method requires (aviary.auth.v1.required_role), e.g. "moderator"; absent for any signed-in user. */
  requiredRole?: string;
}

export interface EdgeService {
  /** Fully qualified name, e.g. `aviary.auth.v1.AuthService`. */
  typeName: string;
  methods: EdgeMethod[];
}

export function readDescriptorSet(file: string): DescService[] {
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(file));
  const registry = createFileRegistry(set);
  const services: DescService[] = [];
  for (const f of registry.files) services.push(...f.services);
  return services;
}

/** Every service with at least one `google.api.http` rule: the client-facing ones. */
export function clientFacingServices(services: DescService[]): EdgeService[] {
  return services
    .map((service) => ({ typeName: service.typeName, methods: service.methods.map(toEdgeMethod) }))
    .filter((service) => service.methods.some((method) => method.rest.length > 0));
}

/** One service by name (e.g. grpc.health.v1.Health), REST rules or not. */
export function serviceByName(services: DescService[], typeName: string): EdgeService {
  const service = services.find((s) => s.typeName === typeName);
  if (!service) throw new Error(`${typeName} is not in the descriptor set`);
  return { typeName: service.typeName, methods: service.methods.map(toEdgeMethod) };
}

function toEdgeMethod(method: DescMethod): EdgeMethod {
  const rules: HttpRule[] = [];
  if (method.proto.options && hasExtension(method.proto.options, http)) {
    const rule = getExtension(method.proto.options, http);
    rules.push(rule, ...rule.additionalBindings);
  }
  const role = requiredRoleOf(method);
  return {
    ...(role === undefined ? {} : { requiredRole: roleClaimOf(role) }),
    name: method.name,
    grpcPath: `/${method.parent.typeName}/${method.name}`,
    streaming: method.methodKind === "server_streaming" || method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    rest: rules.flatMap(toBinding),
  };
}

function toBinding(rule: HttpRule): RestBinding[] {
  const pattern = rule.pattern;
  switch (pattern.case) {
    case "get":
    case "post":
    case "put":
    case "patch":
    case "delete":
      return [{ verb: pattern.case.toUpperCase() as HttpVerb, template: pattern.value }];
    default:
      // `custom` verbs and unset patterns: none of our contracts use them; the
      // transcoder would, but the edge would have no route for them.
      throw new Error(`unsupported google.api.http pattern ${String(pattern.case)}`);
  }
}
