// Validates an OpenAPI document against the OpenAPI schema (its version's).
// Usage: node validate.mjs FILE
import { Validator } from "@seriousme/openapi-schema-validator";

const validator = new Validator();
const result = await validator.validate(process.argv[2]);
if (!result.valid) {
  console.error(JSON.stringify(result.errors, null, 2));
  process.exit(1);
}
console.log(`${process.argv[2]}: valid OpenAPI ${validator.version}`);
