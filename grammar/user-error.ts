// UserError lives in errors/user-error.ts, the bottom layer every part of the tree may import;
// this re-export keeps the existing imports working.
export { UserError, type UserErrorKind } from '../errors/user-error.js';
