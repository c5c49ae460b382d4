/*
 * stave.event._speedups: the two hot loops of event admission, in C.
 *
 * check_tree(value, max_depth) walks a parsed JSON tree (dict/list/str/int/float/bool/None as
 * orjson returns it) and reports, as the pure-Python walk in strictjson.py does:
 *   0  depth within max_depth and every float prints alike in orjson and RFC 8785
 *   1  deeper than max_depth
 *   2  a float that must take the exact (slow) path
 * b58decode(text) decodes Bitcoin-alphabet Base58 (str) to bytes, raising ValueError on a
 * character outside the alphabet.
 *
 * Both are optional accelerators: strictjson.py and base58.py fall back to Python when this
 * module is not built, and the tests hold both implementations to each other.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static int float_prints_alike(double x) {
    double a = fabs(x);
    if (x == floor(x)) return 0; /* integral: orjson prints 1.0, RFC 8785 prints 1 */
    return a >= 1e-5 && a < 1e15;
}

/* Returns 0, 1 or 2 as above, or -1 with an exception set. */
static int walk(PyObject *node, int depth, int max_depth) {
    if (PyDict_CheckExact(node)) {
        if (depth > max_depth) return 1;
        Py_ssize_t pos = 0;
        PyObject *key, *item;
        while (PyDict_Next(node, &pos, &key, &item)) {
            int status;
            if (PyFloat_CheckExact(item)) {
                if (!float_prints_alike(PyFloat_AS_DOUBLE(item))) return 2;
                continue;
            }
            if (!PyDict_CheckExact(item) && !PyList_CheckExact(item)) continue;
            status = walk(item, depth + 1, max_depth);
            if (status) return status;
        }
        return 0;
    }
    if (PyList_CheckExact(node)) {
        if (depth > max_depth) return 1;
        Py_ssize_t n = PyList_GET_SIZE(node);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = PyList_GET_ITEM(node, i);
            int status;
            if (PyFloat_CheckExact(item)) {
                if (!float_prints_alike(PyFloat_AS_DOUBLE(item))) return 2;
                continue;
            }
            if (!PyDict_CheckExact(item) && !PyList_CheckExact(item)) continue;
            status = walk(item, depth + 1, max_depth);
            if (status) return status;
        }
        return 0;
    }
    if (PyFloat_CheckExact(node)) return float_prints_alike(PyFloat_AS_DOUBLE(node)) ? 0 : 2;
    return 0;
}

static PyObject *check_tree(PyObject *self, PyObject *args) {
    PyObject *value;
    int max_depth;
    if (!PyArg_ParseTuple(args, "Oi:check_tree", &value, &max_depth)) return NULL;
    if (max_depth < 1 || max_depth > 512) {
        PyErr_SetString(PyExc_ValueError, "max_depth must be between 1 and 512");
        return NULL;
    }
    /* Recursion is bounded by max_depth (at most 512 frames of a few words each). */
    int status = walk(value, 1, max_depth);
    if (status < 0) return NULL;
    return PyLong_FromLong(status);
}

static const char ALPHABET[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

static signed char B58_VALUES[256];

static PyObject *b58decode(PyObject *self, PyObject *args) {
    const char *text;
    Py_ssize_t length;
    if (!PyArg_ParseTuple(args, "s#:b58decode", &text, &length)) return NULL;

    Py_ssize_t zeros = 0;
    while (zeros < length && text[zeros] == '1') zeros++;
    /* The number as little-endian base-2^32 limbs; 58^5 < 2^30, so five digits at a time
     * fit a 64-bit multiply-add. log(58)/log(2^32) < 0.1831 limbs per digit. */
    Py_ssize_t max_limbs = (length - zeros) * 1831 / 10000 + 2;
    uint32_t *limbs = PyMem_Calloc((size_t)max_limbs, sizeof(uint32_t));
    if (limbs == NULL) return PyErr_NoMemory();
    Py_ssize_t used = 0;
    for (Py_ssize_t i = zeros; i < length;) {
        uint64_t multiplier = 1, chunk = 0;
        for (int k = 0; k < 5 && i < length; k++, i++) {
            unsigned char c = (unsigned char)text[i];
            int digit = B58_VALUES[c];
            if (digit < 0) {
                PyMem_Free(limbs);
                /* Every earlier character was ASCII, so the byte index is the str position. */
                if (c < 128) return PyErr_Format(PyExc_ValueError, "invalid base58 character '%c' at position %zd", c, i);
                return PyErr_Format(PyExc_ValueError, "invalid base58 character (not ASCII) at position %zd", i);
            }
            chunk = chunk * 58 + (uint64_t)digit;
            multiplier *= 58;
        }
        uint64_t carry = chunk;
        for (Py_ssize_t j = 0; j < used; j++) {
            carry += (uint64_t)limbs[j] * multiplier;
            limbs[j] = (uint32_t)carry;
            carry >>= 32;
        }
        while (carry) {
            limbs[used++] = (uint32_t)carry;
            carry >>= 32;
        }
    }
    /* Big-endian bytes without leading zeros, after the '1' zeros. */
    Py_ssize_t nbytes = used * 4;
    while (nbytes > 0 && ((limbs[(nbytes - 1) / 4] >> (8 * ((nbytes - 1) % 4))) & 0xff) == 0) nbytes--;
    PyObject *result = PyBytes_FromStringAndSize(NULL, zeros + nbytes);
    if (result != NULL) {
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
        memset(out, 0, (size_t)zeros);
        for (Py_ssize_t b = 0; b < nbytes; b++) {
            Py_ssize_t index = nbytes - 1 - b; /* byte index from the least significant end */
            out[zeros + b] = (unsigned char)(limbs[index / 4] >> (8 * (index % 4)));
        }
    }
    PyMem_Free(limbs);
    return result;
}

static PyMethodDef methods[] = {
    {"check_tree", check_tree, METH_VARARGS, "Depth and float check of a parsed JSON tree: 0 ok, 1 too deep, 2 slow-path float."},
    {"b58decode", b58decode, METH_VARARGS, "Decode Bitcoin-alphabet Base58 text to bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "stave.event._speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) {
    memset(B58_VALUES, -1, sizeof B58_VALUES);
    for (int i = 0; i < 58; i++) B58_VALUES[(unsigned char)ALPHABET[i]] = (signed char)i;
    return PyModule_Create(&module);
}
