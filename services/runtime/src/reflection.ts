// gRPC server reflection (grpc.reflection.v1 and its v1alpha twin), so
// `grpcurl list` and `grpcurl describe` work against any service without a
// protoset. The answers come from the descriptors the generated code already
// embeds: the served services' files and everything they import, so a
// service describes exactly what it serves and nothing it doesn't.
import { toBinary, type DescExtension, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import { ServerReflection as ServerReflectionV1 } from "@aviary/gen/grpc/reflection/v1/reflection_pb";
import { ServerReflection as ServerReflectionV1Alpha } from "@aviary/gen/grpc/reflection/v1alpha/reflection_pb";

export { ServerReflectionV1, ServerReflectionV1Alpha };

/** Every procedure of both reflection services, for the public-procedure list. */
export const REFLECTION_PROCEDURES = [ServerReflectionV1, ServerReflectionV1Alpha].flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`));

// The request and response oneofs, written out structurally: v1 and v1alpha
// share them field for field, and only their type names differ.
type Question =
  | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
  | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
  | { case: undefined; value?: undefined };
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/** What the reflection services know: built once from the served services. */
export interface ReflectionIndex {
  answer(question: Question): Answer;
}

export function createReflectionIndex(services: readonly DescService[]): ReflectionIndex {
  const files = new Map<string, DescFile>();
  const visit = (file: DescFile): void => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, file);
    for (const dependency of file.dependencies) visit(dependency);
  };
  for (const service of services) visit(service.file);

  // Fully-qualified symbol → the file that declares it.
  const symbols = new Map<string, DescFile>();
  // Extended message type name → its extensions (any file we know).
  const extensions = new Map<string, DescExtension[]>();
  const addExtension = (extension: DescExtension): void => {
    const list = extensions.get(extension.extendee.typeName) ?? [];
    list.push(extension);
    extensions.set(extension.extendee.typeName, list);
  };
  const addMessage = (file: DescFile, message: DescMessage): void => {
    symbols.set(message.typeName, file);
    for (const nested of message.nestedMessages) addMessage(file, nested);
    for (const nested of message.nestedEnums) symbols.set(nested.typeName, file);
    for (const extension of message.nestedExtensions) {
      symbols.set(extension.typeName, file);
      addExtension(extension);
    }
  };
  for (const file of files.values()) {
    for (const message of file.messages) addMessage(file, message);
    for (const enumeration of file.enums) symbols.set(enumeration.typeName, file);
    for (const extension of file.extensions) {
      symbols.set(extension.typeName, file);
      addExtension(extension);
    }
    for (const service of file.services) {
      symbols.set(service.typeName, file);
      for (const method of service.methods) symbols.set(`${service.typeName}.${method.name}`, file);
    }
  }

  const encoded = new Map<string, Uint8Array>();
  const bytesOf = (file: DescFile): Uint8Array => {
    let bytes = encoded.get(file.proto.name);
    if (bytes === undefined) encoded.set(file.proto.name, (bytes = toBinary(FileDescriptorProtoSchema, file.proto)));
    return bytes;
  };
  // The file first, then everything it imports, each once: a client can
  // build the descriptor from one answer.
  const withDependencies = (file: DescFile): Answer => {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const add = (f: DescFile): void => {
      if (seen.has(f.proto.name)) return;
      seen.add(f.proto.name);
      out.push(bytesOf(f));
      for (const dependency of f.dependencies) add(dependency);
    };
    add(file);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
  };
  const notFound = (what: string): Answer => ({ case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } });
  const servedNames = [...new Set(services.map((s) => s.typeName))].sort();

  return {
    answer(question) {
      switch (question.case) {
        case "listServices":
          return { case: "listServicesResponse", value: { service: servedNames.map((name) => ({ name })) } };
        case "fileByFilename": {
          const file = files.get(question.value);
          return file === undefined ? notFound(`file ${question.value}`) : withDependencies(file);
        }
        case "fileContainingSymbol": {
          const file = symbols.get(question.value);
          return file === undefined ? notFound(`symbol ${question.value}`) : withDependencies(file);
        }
        case "fileContainingExtension": {
          const { containingType, extensionNumber } = question.value;
          const extension = extensions.get(containingType)?.find((e) => e.number === extensionNumber);
          return extension === undefined ? notFound(`extension ${extensionNumber} of ${containingType}`) : withDependencies(extension.file);
        }
        case "allExtensionNumbersOfType": {
          if (!symbols.has(question.value)) return notFound(`type ${question.value}`);
          const numbers = (extensions.get(question.value) ?? []).map((e) => e.number).sort((a, b) => a - b);
          return { case: "allExtensionNumbersResponse", value: { baseTypeName: question.value, extensionNumber: numbers } };
        }
        default:
          return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "empty reflection request" } };
      }
    },
  };
}

/** One bidi-stream implementation for both versions. */
async function* serve(index: ReflectionIndex, requests: AsyncIterable<{ host: string; messageRequest: Question }>) {
  for await (const { host, messageRequest } of requests) {
    // The echoed request is rebuilt from plain fields so it fits either version.
    const original: Question =
      messageRequest.case === "fileContainingExtension"
        ? { case: messageRequest.case, value: { containingType: messageRequest.value.containingType, extensionNumber: messageRequest.value.extensionNumber } }
        : messageRequest;
    yield { validHost: host, originalRequest: { host, messageRequest: original }, messageResponse: index.answer(messageRequest) };
  }
}

export function reflectionV1(index: ReflectionIndex): ServiceImpl<typeof ServerReflectionV1> {
  return { serverReflectionInfo: (requests) => serve(index, requests) };
}

export function reflectionV1Alpha(index: ReflectionIndex): ServiceImpl<typeof ServerReflectionV1Alpha> {
  return { serverReflectionInfo: (requests) => serve(index, requests) };
}
