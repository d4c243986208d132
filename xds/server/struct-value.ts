// google.protobuf.Struct as the wire delivers it ({ fields: { k: { string_value } } }, or
// stringValue with protobufjs' built-in types) turned into the plain JSON it stands for.
type Value = Record<string, unknown>;

function pick(value: Value, snake: string, camel: string): unknown {
  return value[snake] ?? value[camel];
}

function valueToJson(value: Value): unknown {
  const text = pick(value, 'string_value', 'stringValue');
  if (text !== undefined) return text;
  const number = pick(value, 'number_value', 'numberValue');
  if (number !== undefined) return number;
  const bool = pick(value, 'bool_value', 'boolValue');
  if (bool !== undefined) return bool;
  const struct = pick(value, 'struct_value', 'structValue');
  if (struct !== undefined) return structToJson(struct);
  const list = pick(value, 'list_value', 'listValue') as { values?: Value[] } | undefined;
  if (list !== undefined) return (list.values ?? []).map(valueToJson);
  return null;
}

export function structToJson(struct: unknown): Record<string, unknown> {
  const fields = (struct as { fields?: Record<string, Value> } | undefined)?.fields;
  if (!fields) return {};
  return Object.fromEntries(Object.entries(fields).map(([key, value]) => [key, valueToJson(value)]));
}
