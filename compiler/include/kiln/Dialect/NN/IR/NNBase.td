//===- NNBase.td - the nn dialect and its shared op classes -*- tablegen -*-===//
#ifndef KILN_DIALECT_NN_IR_NNBASE_TD
#define KILN_DIALECT_NN_IR_NNBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def NN_Dialect : Dialect {
  let name = "nn";
  let cppNamespace = "::kiln::nn";
  let summary = "Kiln's graph IR: one op per neural-network layer kind";
  let description = [{
    The `nn` dialect is the graph IR that Kiln's frontend imports the DSL into
    and that inference (BatchNorm folding, code generation) and training
    (autodiff, optimizer) transform. Ops mirror PyTorch's `torch.nn` layers and
    take PyTorch's argument names as attributes. Activations are ranked f32
    tensors whose first (batch) dimension may be dynamic (`?`).

    Parameters and buffers are values produced by `nn.param` and `nn.buffer`,
    named by their PyTorch `state_dict` key. They carry no value until weights
    are bound (inference: a `value` attribute the folding passes rewrite;
    training: state the training step reads and updates).
  }];
}

// The element-wise function a layer applies to its result once
// nn-fuse-activations has merged the activation op into it.
def NN_ActivationAttr : StrEnumAttr<"Activation",
    "activation fused into a layer", [
      StrEnumAttrCase<"relu">, StrEnumAttrCase<"sigmoid">,
      StrEnumAttrCase<"tanh">]> {
  let cppNamespace = "::kiln::nn";
}

// Activations: ranked f32 tensors (the batch dimension may be dynamic).
def NN_Tensor : RankedTensorOf<[F32]>;

class NN_Op<string mnemonic, list<Trait> traits = []>
    : Op<NN_Dialect, mnemonic, traits>;

// Layers compute a new value from their operands and touch no state; a layer
// whose result is unused may be erased.
class NN_LayerOp<string mnemonic, list<Trait> traits = []>
    : NN_Op<mnemonic, !listconcat(traits, [NoSideEffect])> {
  let verifier = [{ return ::kiln::nn::verifyInferredShape(*this); }];
}

// relu, sigmoid, tanh: y = f(x) element by element.
class NN_ElementwiseOp<string mnemonic, string formula>
    : NN_LayerOp<mnemonic, [SameOperandsAndResultType]> {
  let summary = "element-wise " # formula;
  let arguments = (ins NN_Tensor:$input);
  let results = (outs NN_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let verifier = ?;
}

#endif // KILN_DIALECT_NN_IR_NNBASE_TD
