// LISA++'s task suffixes: the sentences its training data appended to questions (utils/utils.py).
#include "reasonseg/prompts.hpp"

#include "util/error.hpp"

namespace reasonseg {

const char* lisa_plus_suffix(LisaPlusTask task) {
  switch (task) {
    case LisaPlusTask::SemanticSeg:
      return " Generate a mask for semantic segmentation. Focus on identifying the category as a whole; do not "
             "distinguish between individual instances within the same category.";
    case LisaPlusTask::InstanceSeg:
      return " Generate instance segmentation masks. Each countable object within the same category should have a "
             "separate mask. Ignore uncountable categories for individual masking.";
    case LisaPlusTask::SemanticConvSeg:
      return " Provide a textual answer and generate a semantic segmentation mask. Focus on categorizing the entire "
             "class without separating individual instances.";
    case LisaPlusTask::InstanceConvSeg:
      return " Respond with text and provide instance segmentation mask predictions. Different instances within the "
             "same countable category should be identified with separate masks. A single mask suffices for "
             "uncountable categories.";
    case LisaPlusTask::PureConv:
      return " Respond to the question using text only. Do not generate any segmentation masks.";
    case LisaPlusTask::ChainOfThought:
      return " Answer the question with a step-by-step explanation.";
  }
  fail("lisa_plus_suffix: unknown task ", int(task));
}

std::string lisa_plus_prompt(const std::string& question, LisaPlusTask task) {
  return question + lisa_plus_suffix(task);
}

LisaPlusTask parse_lisa_plus_task(const std::string& name) {
  if (name == "sem-seg") return LisaPlusTask::SemanticSeg;
  if (name == "inst-seg") return LisaPlusTask::InstanceSeg;
  if (name == "sem-conv-seg") return LisaPlusTask::SemanticConvSeg;
  if (name == "inst-conv-seg") return LisaPlusTask::InstanceConvSeg;
  if (name == "conv") return LisaPlusTask::PureConv;
  if (name == "cot") return LisaPlusTask::ChainOfThought;
  fail("--task: '", name, "' is not one of sem-seg, inst-seg, sem-conv-seg, inst-conv-seg, conv, cot");
}

}  // namespace reasonseg
