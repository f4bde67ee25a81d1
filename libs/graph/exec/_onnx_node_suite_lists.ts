// The ONNX backend node-test cases (libonnx-testdata, onnx 1.12) that onnx_node_suite_test.ts
// expects NOT to pass, each with its reason. The test fails when a case listed here passes
// (remove it then), and when a case not listed here fails. Only cases with numeric tensors
// run: cases whose model has sequence / optional inputs or outputs, or string tensors, are
// not counted (the test reports how many).

/** Deliberately unsupported: the reason is in each entry. */
export const SKIP: Readonly<Record<string, string>> = {
  // Random sampling: the expected outputs are one draw of numpy's generator, which no other
  // implementation reproduces (onnxruntime skips them too).
  test_bernoulli: "random: Bernoulli draws from numpy's generator",
  test_bernoulli_double: "random: Bernoulli draws from numpy's generator",
  test_bernoulli_seed: "random: Bernoulli draws from numpy's generator",
  test_bernoulli_expanded: "random: RandomUniformLike draws from numpy's generator",
  test_bernoulli_double_expanded: "random: RandomUniformLike draws from numpy's generator",
  test_bernoulli_seed_expanded: "random: RandomUniformLike draws from numpy's generator",
  // Training-mode Dropout with ratio > 0 drops a random mask (the executor refuses it with
  // UNSUPPORTED instead of returning the identity).
  test_training_dropout: "random: training-mode Dropout mask",
  test_training_dropout_default: "random: training-mode Dropout mask",
  test_training_dropout_default_mask: "random: training-mode Dropout mask",
  test_training_dropout_mask: "random: training-mode Dropout mask",
  // Broken test data: input `like` is stored with shape [1] while the model declares [3, 4];
  // the executor checks inputs against the declared shapes and refuses it.
  test_castlike_BFLOAT16_to_FLOAT: "test data: input 'like' has shape [1], model declares [3,4]",
  test_castlike_BFLOAT16_to_FLOAT_expanded:
    "test data: input 'like' has shape [1], model declares [3,4]",
  test_castlike_FLOAT_to_BFLOAT16: "test data: input 'like' has shape [1], model declares [3,4]",
  test_castlike_FLOAT_to_BFLOAT16_expanded:
    "test data: input 'like' has shape [1], model declares [3,4]",
};

/**
 * Work in progress elsewhere, expected to fail for now (empty: control flow, recurrent ops,
 * float16 and onnxruntime's quantized ops have landed).
 */
export const PENDING: Readonly<Record<string, string>> = {};

/**
 * Cases where ONNX's Python reference and onnxruntime disagree and lowbit follows onnxruntime.
 * The test checks these against onnxruntime-web (run on the same model and inputs) and that
 * they still differ from ONNX's expected outputs (else the entry is stale).
 */
export const FOLLOWS_ONNXRUNTIME: Readonly<Record<string, string>> = {
  // Resize align_corners with fractional scale × length: ONNX's reference divides by
  // (scale · length_in − 1), onnxruntime and PyTorch by (length_out − 1) with the integer output
  // length; onnxruntime lists both cases as known mismatches with the ONNX tests.
  test_resize_downsample_scales_linear_align_corners:
    "Resize align_corners: integer output length (onnxruntime), not scale × length (ONNX reference)",
  test_resize_downsample_scales_cubic_align_corners:
    "Resize align_corners: integer output length (onnxruntime), not scale × length (ONNX reference)",
};

/**
 * The other model folders of libonnx-testdata (pytorch-converted, pytorch-operator, simple):
 * cases expected to fail, with the reason. All others must pass.
 */
export const SKIP_OTHER: Readonly<Record<string, string>> = {
  test_gradient_of_add: "training: the Gradient op (ai.onnx.preview.training) needs autodiff",
  test_gradient_of_add_and_mul: "training: the Gradient op (ai.onnx.preview.training)",
  test_sequence_model1: "sequence ops (SequenceEmpty / Insert / At): the IR has no sequence values",
  test_sequence_model2: "sequence ops (SequenceConstruct / Erase / At)",
  test_sequence_model3: "sequence ops (SequenceConstruct / Erase / Insert / At)",
  test_sequence_model4: "sequence ops (SequenceConstruct, ConcatFromSequence)",
  test_sequence_model5: "sequence ops (SequenceConstruct, ConcatFromSequence)",
  test_sequence_model6: "sequence ops (SplitToSequence, SequenceLength)",
  test_sequence_model7: "sequence ops (SplitToSequence, SequenceAt)",
  test_sequence_model8: "sequence ops (SplitToSequence, SequenceLength)",
};
